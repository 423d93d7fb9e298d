"""The end-to-end tests: the whole local stage over real HTTP (a package so lint-imports sees it)."""
