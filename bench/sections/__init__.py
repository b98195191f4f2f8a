"""One module per benchmark section; each `run(bench, ...)` returns a JSON-ready dict."""
