/* LD_PRELOAD shim counting heap allocations (malloc, calloc, realloc) of
 * the whole process between mcount_start() and mcount_stop(). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static long count; static int on;
void mcount_start(void){count=0;on=1;}
long mcount_stop(void){on=0;return count;}
extern void *__libc_malloc(size_t); extern void *__libc_calloc(size_t,size_t); extern void *__libc_realloc(void*,size_t);
void *malloc(size_t n){ if(on) __atomic_add_fetch(&count,1,0); return __libc_malloc(n);}
void *calloc(size_t a,size_t b){ if(on) __atomic_add_fetch(&count,1,0); return __libc_calloc(a,b);}
void *realloc(void*p,size_t n){ if(on) __atomic_add_fetch(&count,1,0); return __libc_realloc(p,n);}
