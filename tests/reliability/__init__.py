"""The reliability battery (issue 8): one file per kind of fault."""
