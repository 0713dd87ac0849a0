"""Locust's side of `./dev.sh bench-load`: the same single GET as one-get.workload,
with Locust's fastest client (FastHttpUser, geventhttpclient) and no wait time."""
from locust import FastHttpUser, task


class ProfileReader(FastHttpUser):
    @task
    def profile(self):
        self.client.get("/api/profiles/user00001", name="GET /api/profiles/{username}")
