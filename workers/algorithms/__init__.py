"""The methods' exact rules as pure functions: no Django, no torch, no network."""
