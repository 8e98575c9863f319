"""No views: the real-world project only migrates."""

urlpatterns: list[object] = []
