#!/usr/bin/env python3
"""CDK entry point: `-c env=dev|staging|prod` (default dev) or `-c sandbox=<name>` (a sandbox derived from dev)."""

import sys

from config import ConfigError, load_config
from config.deployments import pin_for
from stacks.stage import build_unit, new_app

app = new_app()
try:
    config = load_config(env=app.node.try_get_context("env"), sandbox=app.node.try_get_context("sandbox"))
    # What the unit serves: committed by `mlops promote`, reviewed like code; nothing pinned, no endpoint.
    pin = pin_for(config)
except ConfigError as error:
    sys.exit(str(error))
build_unit(app, config, pin)
app.synth()
