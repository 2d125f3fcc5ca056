/* Counts heap allocations during 10 runs of a model after two warm-up runs
 * (the plan exists by then), on the CPU with 2 threads. Dynamic dimensions
 * are 1 (batch) and 640 (others). Built and run by tools/alloc_count.sh. */
#include "facegraph/facegraph.h"
#include <stdio.h>
#include <stdlib.h>
void mcount_start(void); long mcount_stop(void);
int main(int argc,char**argv){
  fg_engine_options o={0}; o.thread_count=2; fg_engine*e; fg_session*s;
  fg_engine_create(&o,&e); fg_status*st=fg_session_open(e,argv[1],&s); if(st){puts(fg_status_message(st));return 1;}
  const fg_value_info*vi=fg_session_input(s,0); fg_tensor in={vi->dtype,vi->rank,{0},0,FG_HOST};
  for(int d=0;d<vi->rank;d++) in.dims[d]=vi->dims[d]>0?vi->dims[d]:(d==0?1:640);
  in.data=calloc(1,fg_tensor_nbytes(&in)); fg_tensor out[32];
  fg_session_run(s,&in,1,out,32); fg_session_run(s,&in,1,out,32);
  mcount_start(); for(int i=0;i<10;i++) fg_session_run(s,&in,1,out,32); long n=mcount_stop();
  printf("%s: %ld allocations in 10 runs\n", argv[1], n);
}
