/* How the runtime describes each conv of a model to the kernels (mnv3_layer): its role
 * decides the row kind, and its block decides what a projection also does (the SE gate it
 * reads, the residual it adds), for float and int8 networks alike. */
#ifndef MNV3_LAYER_H
#define MNV3_LAYER_H

#include "kernels/kernels.h"
#include "model/model.h"

/* The row kind that runs conv c: the stem is a dense conv, expansions, projections and the
 * last conv are pointwise, the depthwise convs are depthwise, squeeze-excite and
 * classifier layers are fully connected. */
mnv3_row_kind mnv3_conv_role(const mnv3_model *m, const mnv3_conv *c);

/* Conv c of model m as the rows see it. */
void mnv3_layer_of(const mnv3_model *m, const mnv3_conv *c, mnv3_layer *l);

#endif
