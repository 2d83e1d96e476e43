"""Loads a prepared tensorflow-datasets image classification set into memory."""
