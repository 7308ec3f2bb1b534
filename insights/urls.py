urlpatterns: list = []  # routes arrive with this app's issue
