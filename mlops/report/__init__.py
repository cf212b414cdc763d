"""`mlops report`: one self-contained HTML page from the JSON/CSV reports of a local execution or monitoring run.

Modules: documents (reading and checking JSON files), inputs (what the page shows, parsed), sources (finding an
execution's or a monitoring run's reports), page (the HTML), command (the CLI).
"""
