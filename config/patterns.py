"""The formats config values must have (AWS's and GitHub's own patterns), one compiled pattern (or the allowed values)
each: config/rules.py checks values with them."""

from __future__ import annotations

import re

ACCOUNT = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# Lower-case so the prefix is valid in S3 bucket names as well as everywhere else.
NAME_PART = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
TAG_VALUE = re.compile(r"^[\w\s.:/=+\-@]{1,256}$")
INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
DATASET_PREFIX = re.compile(r"^(?:[A-Za-z0-9._-]+/)+$")
MARKER_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
# A StartTimeOffset/EndTimeOffset: a negative ISO 8601 duration in days, hours and minutes, at most 15 characters.
OFFSET = re.compile(r"^-P(?=\d|T\d)(?:\d{1,4}D)?(?:T(?=\d)(?:\d{1,5}H)?(?:\d{1,6}M)?)?$")
# GitHub's owner (39 characters of letters, digits, single hyphens) and repository name (100 of letters, digits, . _ -).
GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$")
# AWS::Chatbot::SlackChannelConfiguration's patterns.
SLACK_WORKSPACE_ID = re.compile(r"^[0-9A-Z]{1,255}$")
SLACK_CHANNEL_ID = re.compile(r"^[A-Za-z0-9]{1,255}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SCHEDULE = re.compile(r"^(cron\([^)]+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$")
# SageMaker's name pattern ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} (the length is NAME_LIMITS').
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
# The only retention periods CloudWatch Logs accepts (RetentionInDays).
# fmt: off
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
# fmt: on
