"""Developer and operator tools that are not part of the deployed app."""
