"""khala/cli"""
