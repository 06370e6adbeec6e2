"""The ehrgate client: SDK and command line."""
