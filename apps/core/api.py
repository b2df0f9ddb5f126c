"""What every list and detail endpoint of the REST API shares: keyset (cursor) pagination on the primary
key with a bounded, strictly checked page size; query-string filters declared as a serializer (checked
like a request body, so a wrong type is a 400 naming the parameter, and documented in the schema); and
detail lookups whose 404 says which row is missing."""

from django.core.validators import MaxValueValidator
from django.http import Http404
from drf_spectacular.extensions import OpenApiFilterExtension
from rest_framework import exceptions, generics, serializers
from rest_framework.filters import BaseFilterBackend

from apps.core.api_pagination import MAX_ID, IdCursor, NewestCursor


class QueryFilter(BaseFilterBackend):
    """Filters from the view's `filter_serializer_class` (optional fields, one per query parameter):
    checked, then handed to the view's `filter_by(queryset, data)` with only the parameters given."""

    def filter_queryset(self, request, queryset, view):
        serializer_class = getattr(view, "filter_serializer_class", None)
        if serializer_class is None:
            return queryset
        given = {key: request.query_params.get(key) for key in serializer_class().fields if key in request.query_params}
        checked = serializer_class(data=given)
        checked.is_valid(raise_exception=True)
        data = {key: value for key, value in checked.validated_data.items() if key in given}
        return view.filter_by(queryset, data)


class QueryFilterExtension(OpenApiFilterExtension):
    """Documents each field of the view's filter serializer as a query parameter."""

    target_class = QueryFilter

    def get_schema_operation_parameters(self, auto_schema, *args, **kwargs):
        serializer_class = getattr(auto_schema.view, "filter_serializer_class", None)
        if serializer_class is None:
            return []
        params = []
        for name, field in serializer_class().fields.items():
            schema = auto_schema._map_serializer_field(field, "request")
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "description": str(field.help_text or ""),
                    "schema": schema,
                }
            )
        return params


def bounded_id(field: serializers.IntegerField) -> serializers.IntegerField:
    """`field` with an upper bound of MAX_ID, where it has none: a larger number is no id of any row, and
    the query it would make overflows the database's integer (a 500 on SQLite and PostgreSQL)."""
    if field.max_value is None:
        field.max_value = MAX_ID
        message = field.error_messages["max_value"].format(max_value=MAX_ID)
        field.validators.append(MaxValueValidator(MAX_ID, message=message))
    return field


class FilterSerializer(serializers.Serializer):
    """Base of a list's filters: every field optional, nothing else allowed in the query string is read.
    Whole-number filters are bounded by the largest id (`bounded_id`)."""

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            if isinstance(field, serializers.IntegerField):
                bounded_id(field)
        return fields


def not_found(label: str, pk) -> exceptions.NotFound:
    return exceptions.NotFound(f"There is no {label} #{pk}.")


def get_or_404(queryset, pk, label: str | None = None):
    """The row `pk` of `queryset` (a model or queryset), or a 404 whose message names what is missing."""
    qs = queryset._default_manager.all() if hasattr(queryset, "_default_manager") else queryset
    found = qs.filter(pk=pk).first()
    if found is None:
        raise not_found(label or qs.model._meta.verbose_name, pk)
    return found


class NamedNotFoundMixin:
    """Generic detail views: "There is no training job #7." instead of DRF's "No TrainingJob matches the
    given query." The label is the model's verbose name unless the view sets `object_label`."""

    object_label: str | None = None

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            label = self.object_label or self.get_queryset().model._meta.verbose_name
            raise not_found(label, self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)) from None


class ListApi(generics.ListAPIView):
    """A cursor-paginated list with query-string filters: `filter_serializer_class` checks them, and each
    one given is applied as `filter_lookups[name]` (an ORM lookup; the name itself when not listed) unless
    the view's own `filter_by` does something else."""

    pagination_class = IdCursor
    filter_backends = [QueryFilter]
    filter_serializer_class: type[serializers.Serializer] | None = None
    filter_lookups: dict[str, str] = {}

    def filter_by(self, queryset, data: dict):
        return queryset.filter(**{self.filter_lookups.get(name, name): value for name, value in data.items()})


class DetailApi(NamedNotFoundMixin, generics.RetrieveAPIView):
    """One row by id; a 404 names the row."""


__all__ = [
    "DetailApi",
    "FilterSerializer",
    "IdCursor",
    "ListApi",
    "NewestCursor",
    "bounded_id",
    "get_or_404",
    "not_found",
]
