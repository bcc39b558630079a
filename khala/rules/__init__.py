"""khala/rules"""
