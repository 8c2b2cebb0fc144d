"""Offline dataset mirror tests; repo_writer.py writes repo-shaped folders for other tests."""
