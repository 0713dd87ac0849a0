"""Locust's side of `./dev.sh bench-load`: the same single GET as one-get.workload,
with Locust's fastest client (FastHttpUser, geventhttpclient) and no wait time."""
from locust import FastHttpUser, task


class Searcher(FastHttpUser):
    @task
    def search(self):
        self.client.get("/api/profiles/search?q=user01", name="GET /api/profiles/search")
