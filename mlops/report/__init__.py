"""`mlops report`: one self-contained HTML page from the JSON reports of an execution or a local monitoring run.

Modules: documents (reading and checking JSON reports), inputs (what the page shows, parsed), sources (an execution's
page contents, wherever its files are read from), local (local executions and monitoring runs), aws (executions in AWS:
SageMaker names the jobs, S3 holds the files), page (the HTML), command (the CLI).
"""
