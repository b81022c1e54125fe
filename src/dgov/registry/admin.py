"""Admin pages for the population and legal-entity libraries (sensitive values masked)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from dgov.kernel.masking import mask_address, mask_id_number, mask_phone
from dgov.registry.models import DemoDataset, Enterprise, Household, Person


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    """Persons, with ID number, phone and address masked."""

    list_display = ("name", "masked_id", "sex", "birth_date", "division", "masked_phone")
    list_filter = ("sex",)
    search_fields = ("name",)
    list_select_related = ("division",)
    raw_id_fields = ("household", "division", "source")
    exclude = ("id_number", "phone", "address")
    readonly_fields = ("masked_id", "masked_phone", "masked_address")

    @admin.display(description=_("居民身份证号码"))
    def masked_id(self, obj):
        """ID number, masked."""
        return mask_id_number(obj.id_number)

    @admin.display(description=_("手机号码"))
    def masked_phone(self, obj):
        """Phone, masked."""
        return mask_phone(obj.phone)

    @admin.display(description=_("住址"))
    def masked_address(self, obj):
        """Address, masked."""
        return mask_address(obj.address)


@admin.register(Household)
class HouseholdAdmin(admin.ModelAdmin):
    """Households."""

    list_display = ("household_no", "division", "registered_on")
    search_fields = ("household_no",)
    raw_id_fields = ("division", "source")
    exclude = ("address",)


@admin.register(Enterprise)
class EnterpriseAdmin(admin.ModelAdmin):
    """Enterprises."""

    list_display = ("uscc", "name", "type", "status", "division")
    list_filter = ("type", "status")
    search_fields = ("uscc", "name")
    raw_id_fields = ("legal_representative", "division", "registration_authority")


@admin.register(DemoDataset)
class DemoDatasetAdmin(admin.ModelAdmin):
    """Records of demo generation runs."""

    list_display = ("province_code", "seed", "persons", "enterprises", "officials", "seconds", "created_at")
