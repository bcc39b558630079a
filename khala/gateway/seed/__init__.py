"""khala/gateway/seed"""
