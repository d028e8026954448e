"""The baseline of bench/status_reads.py: a bare Falcon app answering a constant, on the same gunicorn settings."""

import falcon


class Constant:
    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        resp.media = {"task_id": task_id, "status": "success"}


def create_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/tasks/{task_id}", Constant())
    return app
