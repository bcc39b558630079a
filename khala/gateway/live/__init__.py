"""khala/gateway/live"""
