"""Apache Airflow provider for Predibase.

Nothing heavy is imported here: Airflow imports provider packages while parsing DAG files.
"""

__version__ = "0.1.0"
