"""Thin stacks that compose platform constructs, and the Stage that makes them one deployable unit."""
