"""Policies from profiles (seccomp, capabilities, address families), and deployed policies read back."""
