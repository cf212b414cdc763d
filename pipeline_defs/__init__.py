"""Pipeline definitions as code: the shared contract, the DSL over the SageMaker SDK, both pipelines, step scripts,
and (in `local/`) the engine that runs a synthesized definition on this machine.

Importing this package changes nothing process-wide: only `pipeline_defs.sdk` touches the SDK, and it does so
while definitions are built.
"""
