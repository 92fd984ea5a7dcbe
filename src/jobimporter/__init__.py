"""jobimporter: keeps a job board's database in step with external job feeds."""

__version__ = "0.1.0"
