import factory
from django.contrib.auth import get_user_model

from apps.core.roles import Role
from apps.core.services import user_grant_role
from apps.datasets.formats import content_hash
from apps.datasets.models import Dataset, Instruction

TEST_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        self.save()
        if extracted is not None:
            user_grant_role(username=self.username, role=extracted)


def user_with_role(role: Role | None):
    return UserFactory(role=role)


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    name = factory.Sequence(lambda n: f"dataset-{n}")


class InstructionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Instruction

    dataset = factory.SubFactory(DatasetFactory)
    text = factory.Sequence(lambda n: f"Write a haiku about the number {n}.")
    input = ""
    content_hash = factory.LazyAttribute(lambda o: content_hash(o.text, o.input))


def _content_type(obj):
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(obj)


class ReviewTaskFactory(factory.django.DjangoModelFactory):
    """A review task over a fresh instruction (pass `subject=` for another subject, `round=` for a gate's)."""

    class Meta:
        model = "reviews.ReviewTask"
        exclude = ("subject",)

    subject = factory.SubFactory(InstructionFactory)
    kind = "generated"
    subject_type = factory.LazyAttribute(lambda o: _content_type(o.subject))
    subject_id = factory.LazyAttribute(lambda o: o.subject.pk)
