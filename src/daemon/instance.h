/* Instances: the glue between the database, images, network and runtime. */
#pragma once
