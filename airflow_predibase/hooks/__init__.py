"""Airflow hooks. Import `PredibaseHook` from `airflow_predibase.hooks.predibase`."""
