"""Feeds: RSS 2.0, Atom 1.0 and JSON Feed files for the site, each category and each author."""
