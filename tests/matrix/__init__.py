"""Every supported Airflow line, with the built wheel installed as a team would install it."""
