"""One construct per logical unit. Not called `constructs`: that would shadow the `constructs` library."""
