"""The `ehrgate demo` stories: with an embedded gateway (`story`), or offline (`offline`)."""
