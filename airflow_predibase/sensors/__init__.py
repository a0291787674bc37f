"""Sensors on Predibase jobs started elsewhere."""

from airflow_predibase.sensors.jobs import WaitForJobSensor

__all__ = ["WaitForJobSensor"]
