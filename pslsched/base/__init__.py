"""The floor every layer stands on: input errors, the documented limits, the registry pattern and its spec grammar."""
