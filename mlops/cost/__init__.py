"""`mlops cost`: what a pipeline run, an experiment and the unit cost, estimated at once and reconciled with the bill.

- prices.py: the committed Price List snapshot per region, and its refresh from the Price List API;
- estimate.py: pure cost arithmetic over job and endpoint descriptions (no AWS calls);
- explorer.py: Cost Explorer (the billed figures, by the experiment-id tag) and cost allocation tag activation;
- report.py: text, CSV, JSON and HTML renderings;
- command.py: the command itself, which makes the AWS calls and hands their answers to the above.
"""

from pipeline_defs.contract import EXPERIMENT_TAG

# The tags every pipeline job carries for cost allocation (pipeline_defs/dsl.py puts them on each job); the report
# and the tag activation runbook read them back.
COST_TAG_KEYS = ("project", "environment", "cost-center", "pipeline", EXPERIMENT_TAG)
