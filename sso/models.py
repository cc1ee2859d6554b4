from django.conf import settings
from django.db import models


class Identity(models.Model):
    """The provider's account behind a user: (issuer, sub) is the only key an OpenID provider
    promises stays the same; an email or a username may be reassigned to someone else."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255, help_text="the provider's `sub` claim")
    created = models.DateTimeField(auto_now_add=True)
    last_sign_in = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_unique")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
