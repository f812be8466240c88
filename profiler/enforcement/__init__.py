"""Confining a command with a policy, without a container engine: the model, the launcher and its supervisor."""
