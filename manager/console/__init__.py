"""The web console (HTTPS): pages, JSON API, sign-in and roles."""
