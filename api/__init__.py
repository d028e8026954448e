"""The Falcon (WSGI) REST API: resources that only send messages to the actors."""
