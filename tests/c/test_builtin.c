/* Built-in architectures: parameter counts as the source frameworks count them, MACs, and
 * channel rounding. */
#include <string.h>

#include "check.h"
#include "mnv3.h"

static uint64_t params(mnv3_arch arch, mnv3_flavor flavor, double width, uint32_t classes) {
    mnv3_model *m = NULL;
    mnv3_model_info info;
    mnv3_error err;
    mnv3_status st = mnv3_model_create_builtin(arch, flavor, width, classes, 1, &m, &err);
    CHECK_MSG(st == MNV3_OK, "create_builtin: %s", err.message);
    if (st != MNV3_OK) return 0;
    mnv3_model_get_info(m, &info);
    mnv3_model_free(m);
    return info.parameters;
}

int main(void) {
    mnv3_model *m = NULL;
    mnv3_error err;
    uint64_t macs = 0;
    /* torch.nn.Module.parameters() totals (BatchNorm contributes weight and bias). */
    CHECK(params(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 1.0, 1000) == 5483032u);
    CHECK(params(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 1000) == 2542856u);
    CHECK(params(MNV3_ARCH_LARGE, MNV3_FLAVOR_WALKTHROUGH, 1.0, 1000) == 5476416u);
    printf("large tv %llu small tv %llu large walk %llu small walk %llu large 0.75 %llu\n",
           (unsigned long long)params(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 1.0, 1000),
           (unsigned long long)params(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 1000),
           (unsigned long long)params(MNV3_ARCH_LARGE, MNV3_FLAVOR_WALKTHROUGH, 1.0, 1000),
           (unsigned long long)params(MNV3_ARCH_SMALL, MNV3_FLAVOR_WALKTHROUGH, 1.0, 1000),
           (unsigned long long)params(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 0.75, 1000));

    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 7,
                                           &m, &err), MNV3_OK);
    CHECK_STATUS(mnv3_model_macs(m, 224, 224, &macs), MNV3_OK);
    printf("large macs %llu\n", (unsigned long long)macs);
    mnv3_model_free(m);

    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 0.0, 10, 1,
                                           &m, &err), MNV3_ERR_INVALID_ARGUMENT);
    CHECK(m == NULL);
    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_CUSTOM, MNV3_FLAVOR_TORCHVISION, 1.0, 10, 1,
                                           &m, &err), MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 0, 1,
                                           &m, &err), MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 10, 1,
                                           NULL, &err), MNV3_ERR_NULL_ARGUMENT);
    return check_summary("test_builtin");
}
