"""HTTP layer of accident-api: the Flask application factory lives here."""
