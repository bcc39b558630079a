"""khala/gateway/serve"""
