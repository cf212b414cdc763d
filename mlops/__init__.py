"""The operator CLI `mlops` (entry point `mlops.cli:main`): one module per command, `cli.py` parses and dispatches.

Importing any of it changes nothing process-wide (no environment variables, no SDK); boto3 is imported by the
commands that call AWS, when they run.
"""
