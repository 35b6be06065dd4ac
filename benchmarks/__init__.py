"""Benchmarks of mlops-nb (issue 2): `bash benchmarks/run.sh`."""
