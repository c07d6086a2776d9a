"""Kubernetes and ECI objects into fastmatch's model objects."""
