/* Example: open a model with libfacegraph, run it on a host tensor, print
 * the output shapes. Build: `make` (built as build/example_detect_faces).
 * usage: example_detect_faces MODEL.onnx */
#include <facegraph/facegraph.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.onnx\n", argv[0]);
        return 2;
    }
    fg_engine_options options = {0}; /* cpu, all cores */
    fg_engine *engine = NULL;
    fg_session *session = NULL;
    fg_status *st = fg_engine_create(&options, &engine);
    if (!st)
        st = fg_session_open(engine, argv[1], &session);
    if (st) {
        fprintf(stderr, "error: %s\n", fg_status_message(st));
        fg_status_free(st);
        fg_engine_destroy(engine);
        return 1;
    }
    /* one input, dynamic dims taken as 1 (batch) or 640 (spatial) */
    const fg_value_info *in = fg_session_input(session, 0);
    fg_tensor input = {in->dtype, in->rank, {0}, NULL, FG_HOST};
    for (int d = 0; d < in->rank; d++)
        input.dims[d] = in->dims[d] >= 0 ? in->dims[d] : (d == 0 ? 1 : 640);
    input.data = calloc(1, fg_tensor_nbytes(&input));
    fg_tensor outputs[16];
    int n_out = fg_session_output_count(session);
    st = n_out <= 16 ? fg_session_run(session, &input, 1, outputs, 16) : NULL;
    for (int i = 0; !st && i < n_out && i < 16; i++) {
        printf("%s:", fg_session_output(session, i)->name);
        for (int d = 0; d < outputs[i].rank; d++)
            printf(" %lld", (long long)outputs[i].dims[d]);
        printf("\n");
    }
    int rc = 0;
    if (st) {
        fprintf(stderr, "error: %s\n", fg_status_message(st));
        fg_status_free(st);
        rc = 1;
    }
    free(input.data);
    fg_session_close(session);
    fg_engine_destroy(engine);
    return rc;
}
