"""The static files storage: WhiteNoise's compressed, hashed names once `collectstatic` has run.

`whitenoise.storage.CompressedManifestStaticFilesStorage` writes `elk.bundled.<hash>.js` and its
`.gz` into STATIC_ROOT with a manifest, and `{% static %}` names the hashed file, which WhiteNoise
serves with a ten-year immutable cache header.  Without that manifest it would fail every page
(ValueError), so a server started before `collectstatic` (a test's daphne, a fresh checkout)
names the apps' own files instead, which WhiteNoise finds through the finders
(WHITENOISE_USE_FINDERS) with a short max-age.  `manage.py demo` collects first; `check --deploy`
warns without a manifest (events.E050).
"""

import logging

from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class ManifestOrAppStaticFiles(CompressedManifestStaticFilesStorage):
    """Hashed names from the manifest; the plain name while there is no manifest at all."""

    # The CSS patterns only: the vendored bundles end in `//# sourceMappingURL=...` comments to
    # maps that are not shipped, which Django's *.js pattern would fail collectstatic on.
    patterns = tuple(
        (glob, rules) for glob, rules in CompressedManifestStaticFilesStorage.patterns
        if glob != "*.js"
    )  # fmt: skip

    def load_manifest(self):
        """Remember whether collectstatic's manifest was there when this process started."""
        self.has_manifest = self.read_manifest() is not None
        return super().load_manifest()

    def save_manifest(self):
        """collectstatic in this very process (manage.py demo): its pages use the new names."""
        super().save_manifest()
        self.has_manifest = True

    def stored_name(self, name):
        """A missing entry in a manifest stays an error (a file added after collectstatic);
        no manifest at all means unhashed names (said once per process; events.E050 warns)."""
        if self.has_manifest:
            return super().stored_name(name)
        if not getattr(self, "_warned", False):
            self._warned = True
            logger.info("no static files manifest in %s: unhashed names", self.location)
        return name
