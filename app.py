#!/usr/bin/env python3
"""CDK entry point: `-c env=dev|staging|prod` (default dev) or `-c sandbox=<name>` (a sandbox derived from dev)."""

import os
import sys

from config import ConfigError, load_config
from config.deployments import pin_for
from stacks.stage import build_unit, new_app

# CDK's built-in validation runs in `make test` on every unit; CDK_VALIDATION=true runs it on this synth too.
app = new_app(builtin_validation=os.environ.get("CDK_VALIDATION") == "true")
try:
    config = load_config(env=app.node.try_get_context("env"), sandbox=app.node.try_get_context("sandbox"))
    # What the unit serves: committed by `mlops promote`, reviewed like code; nothing pinned, no endpoint.
    pin = pin_for(config)
    build_unit(app, config, pin)  # refuses, e.g., a pin whose serving code this checkout does not build
except ConfigError as error:
    sys.exit(str(error))
app.synth()
