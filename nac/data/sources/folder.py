"""Loads an image folder (PNG/JPEG, `PATH/<split>/<class>/*`) into memory."""
