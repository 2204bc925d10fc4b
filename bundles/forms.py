"""Console forms of bundles: upload, push grants, diff selection, the draft editor."""

from django import forms

from bundles.language.archive import MAX_ARCHIVE_BYTES

ARCHIVE_TOO_LARGE = "The archive is larger than {limit} bytes."
PATH_REQUIRED = "Give the new file a path, e.g. policies/new-rule.yaml."
PATH_EXISTS = "The draft already has a file {path!r}; edit it above instead."
NO_FILES_LEFT = "A draft needs at least bundle.yaml and ontology.yaml; not every file can be removed."
GRANT = "grant"
REVOKE = "revoke"


class UploadForm(forms.Form):
    archive = forms.FileField(
        label="Bundle archive (.tar.gz)",
        help_text="A .tar.gz of the bundle directory; bundle.yaml names the bundle and its version.",
    )

    def clean_archive(self):
        upload = self.cleaned_data["archive"]
        if upload.size > MAX_ARCHIVE_BYTES:
            raise forms.ValidationError(ARCHIVE_TOO_LARGE.format(limit=MAX_ARCHIVE_BYTES), code="too_large")
        return upload


class PushGrantForm(forms.Form):
    username = forms.CharField(max_length=150)
    action = forms.ChoiceField(choices=[(GRANT, "Grant"), (REVOKE, "Revoke")], initial=GRANT)


class DiffForm(forms.Form):
    """Choose two versions of a bundle (query parameters `from` and `to`, like the API)."""

    def __init__(self, data, *, versions: list[str]):
        super().__init__(data)
        choices = [(version, version) for version in versions]
        # `from` is a Python keyword, so the fields are added here rather than declared.
        self.fields["from"] = forms.ChoiceField(choices=choices, label="From")
        self.fields["to"] = forms.ChoiceField(choices=choices, label="To")


def normalise_path(path: str) -> str:
    """Return a file path as typed, without surrounding blanks or a leading './'."""
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def normalise_text(text: str) -> str:
    """Return file text with the CRLF line ends browsers submit for textareas turned back into LF."""
    return text.replace("\r\n", "\n")


class DraftForm(forms.Form):
    """One textarea per file of the draft, a remove box per file, and one optional new file.

    The fields are numbered (`path_0`, `text_0`, `remove_0`, ...) so paths with slashes never become field
    names; the hidden path fields carry the file each textarea belongs to.
    """

    new_path = forms.CharField(required=False, label="New file path", max_length=255)
    new_text = forms.CharField(
        required=False, label="New file content", strip=False, widget=forms.Textarea(attrs={"rows": 6})
    )

    def __init__(self, data=None, *, files: dict[str, str]):
        if data is None:
            initial = {}
            for index, path in enumerate(sorted(files)):
                initial[f"path_{index}"] = path
                initial[f"text_{index}"] = files[path]
            super().__init__(initial=initial)
            count = len(files)
        else:
            super().__init__(data)
            count = sum(1 for key in data if key.startswith("path_"))
        self.count = count
        for index in range(count):
            self.fields[f"path_{index}"] = forms.CharField(widget=forms.HiddenInput, max_length=255)
            self.fields[f"text_{index}"] = forms.CharField(
                required=False, strip=False, widget=forms.Textarea(attrs={"spellcheck": "false"})
            )
            self.fields[f"remove_{index}"] = forms.BooleanField(required=False, label="Remove this file")

    def make_read_only(self) -> None:
        """Show the files without letting them be edited (a published draft)."""
        for name, field in self.fields.items():
            field.disabled = True
            if name.startswith("text_"):
                field.widget.attrs["readonly"] = True

    def entries(self) -> list[dict]:
        """Return one entry per file for the template: path and its bound fields."""
        rows = []
        for index in range(self.count):
            path_field = self[f"path_{index}"]
            text_field = self[f"text_{index}"]
            text = text_field.value() or ""
            text_field.field.widget.attrs["rows"] = min(max(text.count("\n") + 2, 4), 40)
            rows.append(
                {
                    "path": path_field.value(),
                    "path_field": path_field,
                    "text_field": text_field,
                    "remove_field": self[f"remove_{index}"],
                    "text": text,
                }
            )
        return rows

    def clean(self):
        cleaned = super().clean()
        files = {}
        for index in range(self.count):
            path = normalise_path(cleaned.get(f"path_{index}") or "")
            if path and not cleaned.get(f"remove_{index}"):
                files[path] = normalise_text(cleaned.get(f"text_{index}") or "")
        new_path = normalise_path(cleaned.get("new_path") or "")
        new_text = normalise_text(cleaned.get("new_text") or "")
        if new_text.strip() and not new_path:
            self.add_error("new_path", PATH_REQUIRED)
        elif new_path:
            if new_path in files:
                self.add_error("new_path", PATH_EXISTS.format(path=new_path))
            files[new_path] = new_text
        if not files:
            raise forms.ValidationError(NO_FILES_LEFT, code="no_files")
        cleaned["files"] = files
        return cleaned
